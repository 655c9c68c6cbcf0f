"""CMFH (Ding, Guo & Zhou, CVPR 2014): the spec and hyper-parameters, torch-free; the method is in
``model.py``."""

from dataclasses import dataclass

from cmhbench.specs import Citation, MethodSpec, lazy


@dataclass(frozen=True)
class CMFHParams:
    lam: float = 0.5
    mu: float = 100.0
    gamma: float = 0.01
    #: alternating updates until the relative objective change is below tolerance, at most this many
    iterations: int = 100
    tolerance: float = 1e-6


SPEC = MethodSpec(
    name="cmfh", description="Collective Matrix Factorization Hashing: shared latent factors, closed-form ALS",
    citation=Citation("Collective Matrix Factorization Hashing for Multimodal Data", "CVPR", 2014,
                      "Guiguang Ding, Yuchen Guo, Jile Zhou",
                      url="https://openaccess.thecvf.com/content_cvpr_2014/html/Ding_Collective_Matrix_Factorization_2014_CVPR_paper.html"),
    create=lazy("cmhbench_methods.cmfh.model:CMFH"), params=CMFHParams, image_encoder="", input="features", stages={})
