import pytest
import torch

from models import (FoldedClassifier, FoldError, build_model, fold_images, fold_logits,
                    unfold_images, unfold_logits)


def numbered_images(n, c=3, h=4, w=5):
    """Images whose every pixel holds the image index: order mistakes show up."""
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, c, h, w).clone()


@pytest.mark.parametrize("f", [1, 2, 3, 4])
def test_image_j_goes_to_channel_block_j(f):
    x = numbered_images(4 * f)
    folded = fold_images(x, f)
    assert folded.shape == (4, 3 * f, 4, 5)
    for g in range(4):
        for j in range(f):
            assert torch.all(folded[g, 3 * j:3 * (j + 1)] == g * f + j)
    assert torch.equal(unfold_images(folded, f), x)


@pytest.mark.parametrize("f", [1, 2, 3, 4])
def test_logit_block_j_is_image_j(f):
    k = 7
    y = torch.arange(4 * f * k, dtype=torch.float32).view(4, f * k)
    per_image = unfold_logits(y, f)
    for g in range(4):
        for j in range(f):
            assert torch.equal(per_image[g * f + j], y[g, j * k:(j + 1) * k])
    assert torch.equal(fold_logits(per_image, f), y)


def test_fold_works_on_channels_last():
    x = numbered_images(8).contiguous(memory_format=torch.channels_last)
    assert torch.equal(fold_images(x, 4), fold_images(x.contiguous(), 4))


def test_not_a_multiple_is_a_clear_error():
    with pytest.raises(FoldError, match="multiple of f"):
        fold_images(torch.zeros(5, 3, 2, 2), 2)
    with pytest.raises(FoldError, match="multiple of f"):
        unfold_logits(torch.zeros(2, 7), 2)


class Probe(torch.nn.Module):
    """A 'model' that returns, for each image slot, that slot's mean pixel as K logits."""
    def __init__(self, f, k=3):
        super().__init__()
        self.fold, self.k = f, k

    def forward(self, x):
        g = x.shape[0]
        means = x.view(g, self.fold, -1).mean(-1)  # (g, f)
        return means.repeat_interleave(self.k, dim=1)


@pytest.mark.parametrize("f,n", [(2, 5), (3, 7), (4, 4), (4, 1)])
def test_wrapper_keeps_order_and_pads_last_group(f, n):
    out = FoldedClassifier(Probe(f))(numbered_images(n))
    assert out.shape == (n, 3)
    assert torch.equal(out[:, 0], torch.arange(n, dtype=torch.float32))


def test_wrapper_on_a_real_model_matches_manual_folding():
    m = build_model("sot/coin_count-digits_3_4-v2", 3).eval()
    x = torch.randn(6, 3, 17, 40)
    with torch.no_grad():
        assert torch.allclose(FoldedClassifier(m)(x), unfold_logits(m(fold_images(x, 3)), 3))
        # an image's prediction does not depend on padding in another group
        assert torch.allclose(FoldedClassifier(m)(x[:4])[:3], FoldedClassifier(m)(x)[:3], atol=1e-6)
