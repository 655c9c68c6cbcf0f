"""DSPH against a port of its release's loss (QinLab-WFU/DSPH utils/utils.py ``HyP.forward``, kept
in its layout: torch.where masks, nonzero counts, the multi-label subset), its margin table
and its proxies (its learning on the toy: tests/test_clip_methods.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cmhbench.errors import CmhbenchError
from cmhbench_methods.dsph import code_table_margin
from cmhbench_methods.dsph.losses import dsph_loss
from cmhbench_methods.dsph.model import Proxies, tanh_head


def original_hyp_loss(x, y, label, proxies, threshold, alpha):
    P_one_hot = label
    cos = F.normalize(x, p=2, dim=1).mm(F.normalize(proxies, p=2, dim=1).T)
    pos = 1 - cos
    neg = F.relu(cos - threshold)
    cos_t = F.normalize(y, p=2, dim=1).mm(F.normalize(proxies, p=2, dim=1).T)
    pos_t = 1 - cos_t
    neg_t = F.relu(cos_t - threshold)
    P_num = len(P_one_hot.nonzero())
    N_num = len((P_one_hot == 0).nonzero())
    pos_term = torch.where(P_one_hot == 1, pos.to(torch.float32), torch.zeros_like(cos).to(torch.float32)).sum() / P_num
    neg_term = torch.where(P_one_hot == 0, neg.to(torch.float32), torch.zeros_like(cos).to(torch.float32)).sum() / N_num
    pos_term_t = torch.where(P_one_hot == 1, pos_t.to(torch.float32), torch.zeros_like(cos_t).to(torch.float32)).sum() / P_num
    neg_term_t = torch.where(P_one_hot == 0, neg_t.to(torch.float32), torch.zeros_like(cos_t).to(torch.float32)).sum() / N_num
    if alpha > 0:
        index = label.sum(dim=1) > 1
        label_ = label[index].float()
        x_ = x[index]
        t_ = y[index]
        cos_sim = label_.mm(label_.T)
        if len((cos_sim == 0).nonzero()) == 0:
            reg_term = reg_term_t = reg_term_xt = 0
        else:
            x_sim = F.normalize(x_, p=2, dim=1).mm(F.normalize(x_, p=2, dim=1).T)
            t_sim = F.normalize(t_, p=2, dim=1).mm(F.normalize(t_, p=2, dim=1).T)
            xt_sim = F.normalize(x_, p=2, dim=1).mm(F.normalize(t_, p=2, dim=1).T)
            neg = alpha * F.relu(x_sim - threshold)
            neg_t = alpha * F.relu(t_sim - threshold)
            neg_xt = alpha * F.relu(xt_sim - threshold)
            reg_term = torch.where(cos_sim == 0, neg, torch.zeros_like(x_sim)).sum() / len((cos_sim == 0).nonzero())
            reg_term_t = torch.where(cos_sim == 0, neg_t, torch.zeros_like(t_sim)).sum() / len((cos_sim == 0).nonzero())
            reg_term_xt = torch.where(cos_sim == 0, neg_xt, torch.zeros_like(xt_sim)).sum() / len((cos_sim == 0).nonzero())
    else:
        reg_term = reg_term_t = reg_term_xt = 0
    return pos_term + neg_term + pos_term_t + neg_term_t + reg_term + reg_term_t + reg_term_xt


@pytest.mark.parametrize("alpha, delta, density", [(0.8, 0.0, 0.2), (0.8, 0.25, 0.1), (0.0, 0.125, 0.2),
                                                   (0.8, 0.0, 0.02)])  # the last: few multi-label pairs
def test_dsph_loss_is_the_releases(alpha, delta, density):
    torch.manual_seed(0)
    batch, bits, classes = 48, 16, 12
    for trial in range(5):
        labels = (torch.rand(batch, classes) < density).float()
        labels[torch.arange(batch), torch.randint(0, classes, (batch,))] = 1
        image, text = torch.tanh(torch.randn(batch, bits)), torch.tanh(torch.randn(batch, bits))
        proxies = torch.randn(classes, bits)
        ours = dsph_loss(image, text, proxies, labels, delta, alpha)
        theirs = original_hyp_loss(image, text, labels, proxies, delta, alpha)
        assert torch.allclose(ours, theirs, atol=1e-6), (trial, ours, theirs)


def test_no_unrelated_multi_label_pair_adds_no_irrelevant_term():
    labels = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # the multi-label two share label 0
    image, text, proxies = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    assert torch.allclose(dsph_loss(image, text, proxies, labels, 0.0, 0.8), dsph_loss(image, text, proxies, labels, 0.0, 0.0))


def test_the_gradient_reaches_codes_and_proxies():
    labels = (torch.rand(16, 5) < 0.4).float()
    labels[:, 0] = 1
    image, text = torch.randn(16, 8, requires_grad=True), torch.randn(16, 8, requires_grad=True)
    proxies = torch.randn(5, 8, requires_grad=True)
    dsph_loss(image, text, proxies, labels, 0.0, 0.8).backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (image, text, proxies))


@pytest.mark.parametrize("bits, classes, expected", [
    (16, 24, 0.0), (32, 24, 0.0), (64, 21, 0.0), (16, 80, 0.25), (32, 80, 0.125), (64, 80, 0.0),  # MIRFLICKR, NUS, COCO
    (3, 8, 1 / 3), (4, 16, 0.5), (8, 10, 0.0), (8, 20, 0.5), (24, 200, 1 / 3),  # the table's rows read back: 8 codes of 3 bits, ...
])
def test_the_margin_is_the_release_code_table(bits, classes, expected):
    """The release looks δ up in utils/codetable.xlsx at row K, column ⌈log₂ C⌉ (utils/get_args.py:49-50);
    the expected values are the sheet's cells (3 bits, 8 codes: 1/3 is the simplex's bound)."""
    assert code_table_margin(bits, classes) == pytest.approx(expected)


def test_a_margin_outside_the_table_names_the_option():
    with pytest.raises(CmhbenchError, match="delta=VALUE"):
        code_table_margin(512, 24)
    with pytest.raises(CmhbenchError, match="delta=VALUE"):
        code_table_margin(4, 80)  # 128 codes of 4 bits do not exist


def test_proxies_and_heads_are_drawn_as_the_release_draws_them():
    torch.manual_seed(0)
    proxies = Proxies(80, 64).weight.detach()
    assert abs(proxies.std().item() - math.sqrt(2 / 80)) < 0.01  # kaiming_normal_ fan_out on classes × bits
    default, kaiming = tanh_head(512, 64, "default"), tanh_head(512, 64, "kaiming")
    assert default.fc.weight.abs().max() <= 1 / math.sqrt(512) + 1e-6  # torch's Linear default: U(±1/√in)
    assert kaiming.fc.weight.abs().max() > 1 / math.sqrt(512)  # U(±√(6/K))
    assert default.fc.bias.abs().sum() > 0 and kaiming.fc.bias.abs().sum() == 0
