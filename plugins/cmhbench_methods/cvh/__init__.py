"""CVH (Kumar & Udupa, IJCAI 2011): the spec and hyper-parameters, torch-free; the method is in
``model.py``."""

from dataclasses import dataclass
from typing import Literal

from cmhbench.specs import Citation, MethodSpec, lazy


@dataclass(frozen=True)
class CVHParams:
    #: ε, relative to the mean diagonal of each covariance
    regularisation: float = 1e-4
    #: the paper's C_xy C_yy⁻¹ C_yx, or the widely copied C_xy C_yy C_yx
    form: Literal["paper", "copied"] = "paper"


def image_width_limit(image_dim: int, text_dim: int) -> int:
    """One generalized eigenvector of the image covariance per bit: at most as many as its width."""
    return image_dim


SPEC = MethodSpec(
    name="cvh", description="Cross-View Hashing: spectral relaxation solved as a generalized eigenproblem",
    citation=Citation("Learning Hash Functions for Cross-View Similarity Search", "IJCAI", 2011,
                      "Shaishav Kumar, Raghavendra Udupa",
                      url="https://www.aaai.org/ocs/index.php/IJCAI/IJCAI11/paper/view/3350/3446"),
    create=lazy("cmhbench_methods.cvh.model:CVH"), params=CVHParams, image_encoder="", input="features", stages={},
    max_bits=image_width_limit)
