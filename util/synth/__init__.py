"""Offline synthetic data: game-scraping images (rendered HUD text) and NoScope camera scenes."""
