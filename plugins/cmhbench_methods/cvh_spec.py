"""CVH's spec and hyper-parameters (torch-free, so that listing methods is fast); the method is in
cvh.py."""

from cmhbench.specs import Citation, MethodSpec, lazy

DEFAULTS = {"regularisation": 1e-4, "form": "paper"}


def image_width_limit(image_dim: int, text_dim: int) -> int:
    """One generalized eigenvector of the image covariance per bit: at most as many as its width."""
    return image_dim


SPEC = MethodSpec(
    name="cvh", description="Cross-View Hashing: spectral relaxation solved as a generalized eigenproblem",
    citation=Citation("Learning Hash Functions for Cross-View Similarity Search", "IJCAI", 2011,
                      "Shaishav Kumar, Raghavendra Udupa",
                      url="https://www.aaai.org/ocs/index.php/IJCAI/IJCAI11/paper/view/3350/3446"),
    create=lazy("cmhbench_methods.cvh:CVH"), defaults=DEFAULTS, image_encoder="", input="features", stages={},
    choices={"form": ("paper", "copied")}, max_bits=image_width_limit)
