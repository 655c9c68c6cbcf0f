"""CMFH's spec and hyper-parameters (torch-free, so that listing methods is fast); the method is
in cmfh.py."""

from cmhbench.specs import Citation, MethodSpec, lazy

DEFAULTS = {"lam": 0.5, "mu": 100.0, "gamma": 0.01, "iterations": 100, "tolerance": 1e-6}


SPEC = MethodSpec(
    name="cmfh", description="Collective Matrix Factorization Hashing: shared latent factors, closed-form ALS",
    citation=Citation("Collective Matrix Factorization Hashing for Multimodal Data", "CVPR", 2014,
                      "Guiguang Ding, Yuchen Guo, Jile Zhou",
                      url="https://openaccess.thecvf.com/content_cvpr_2014/html/Ding_Collective_Matrix_Factorization_2014_CVPR_paper.html"),
    create=lazy("cmhbench_methods.cmfh:CMFH"), defaults=DEFAULTS, image_encoder="", input="features", stages={})
