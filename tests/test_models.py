import pytest
import torch

from config.tasks import TaskError, get_task, task_names
from models import CompoundScaling, build_model, folded_width, model_input_shape

ALL = [(n, f) for n in task_names() for f in (1, 2, 3, 4)]


@pytest.mark.parametrize("name,fold", ALL)
def test_every_task_and_fold_runs_forward(name, fold):
    model = build_model(name, fold).eval()
    c, h, w = model_input_shape(model)
    assert c == 3 * fold and (h, w) == (get_task(name).height, get_task(name).width)
    with torch.no_grad():
        y = model(torch.randn(3, c, h, w))
    assert y.shape == (3, fold * get_task(name).num_classes)
    assert torch.isfinite(y).all()


def test_paper_widths():
    assert [folded_width(32, f) for f in (1, 2, 3, 4)] == [32, 45, 55, 64]
    assert [folded_width(8, f) for f in (1, 2, 3, 4)] == [8, 11, 13, 16]
    assert folded_width(32, 2, channel_align=8) == 48


def test_game_cnn_layout_v1():
    m = build_model("lol/goldnumber-fraction", 2)
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(6, 45), (45, 45), (45, 45), (45, 45), (45, 11)]
    assert m.head.out_features == 22


def test_timer3_has_two_units():
    convs = [l for l in build_model("sot/timer3").modules() if isinstance(l, torch.nn.Conv2d)]
    assert len(convs) == 8


def test_noscope_layouts():
    r = build_model("noscope-roundabout", 4)
    convs = [l.out_channels for l in r.modules() if isinstance(l, torch.nn.Conv2d)]
    assert convs == [64, 64, 128, 128]
    lin = [l.out_features for l in build_model("noscope-taipei", 1).modules() if isinstance(l, torch.nn.Linear)]
    assert lin == [32, 2]


def test_resnet18_widths():
    m = build_model("cifar100", 4)
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    assert convs[0].in_channels == 12 and convs[0].out_channels == 128 and m.head.out_features == 400
    assert m.head.in_features == 1024


def test_initialisation():
    m = build_model("lol/goldnumber-fraction", 1).requires_grad_(False)
    assert float(m.head.weight.std()) == pytest.approx(0.01, rel=0.3)
    assert float(m.head.bias.abs().max()) == 0.0
    conv = m.features[0]
    bound = torch.nn.init.calculate_gain("relu") * (6 / (conv.in_channels * 9 + conv.out_channels * 9)) ** 0.5
    assert float(conv.weight.abs().max()) <= bound + 1e-6


def test_efficientnet_baseline_layout():
    m = build_model("lol/goldnumber-fraction", 1, scaling="efficientnet")
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.out_channels == 29 for c in convs)
    assert model_input_shape(m) == (3, 19, 45)
    v4 = build_model("sot/timer3", 1, scaling="efficientnet")
    assert sum(isinstance(l, torch.nn.Conv2d) for l in v4.modules()) == 7
    paper_depth = build_model("sot/timer3", 1, scaling="efficientnet",
                              compound=CompoundScaling(depth=1.2))
    assert sum(isinstance(l, torch.nn.Conv2d) for l in paper_depth.modules()) == 6  # int(8 / 1.2)
    unscaled = build_model("sot/timer3", 1, scaling="efficientnet", compound=CompoundScaling(steps=0))
    assert [p.shape for p in unscaled.parameters()] == [p.shape for p in build_model("sot/timer3").parameters()]


def test_efficientnet_errors():
    with pytest.raises(TaskError, match="no EfficientNet"):
        build_model("noscope-coral", 1, scaling="efficientnet")
    with pytest.raises(TaskError, match="not folded"):
        build_model("sot/timer3", 2, scaling="efficientnet")
    with pytest.raises(TaskError, match="scaling"):
        build_model("sot/timer3", 1, scaling="wide")


@pytest.mark.parametrize("name", ["lol/goldnumber-fraction", "noscope-taipei", "cifar10"])
def test_channel_align_and_input_padding(name):
    m = build_model(name, 3, channel_align=8, pad_input=True).eval()
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    assert all(c.out_channels % 8 == 0 for c in convs) and convs[0].in_channels == 16
    t = get_task(name)
    x = torch.randn(2, 9, t.height, t.width)  # unpadded input is padded inside
    with torch.no_grad():
        y1 = m(x)
        y2 = m(torch.cat([x, torch.zeros(2, 7, t.height, t.width)], 1))
    assert torch.allclose(y1, y2) and y1.shape == (2, 3 * t.num_classes)


@pytest.mark.parametrize("bad", [0, 2.0, -8])
def test_bad_channel_align(bad):
    with pytest.raises(TaskError, match="channel_align"):
        build_model("sot/timer3", 1, channel_align=bad)
