"""The NoScope video pipeline as a library: tasks by short name, the frame folder (frames,
size, ``.complete`` marker), the label CSV and the train/val/test split. The commands
``util/noscope_video_save.py`` and ``util/noscope_split.py`` are thin wrappers over it."""
