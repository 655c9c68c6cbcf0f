"""SCM's specs and hyper-parameters (torch-free, so that listing methods is fast); the methods are
in scm.py."""

from cmhbench.specs import Citation, MethodSpec, lazy

ORTH_DEFAULTS = {"regularisation": 1e-4}
SEQ_DEFAULTS = {**ORTH_DEFAULTS, "stop": "cca"}
STOP_RULES = ("none", "cca")

CITATION = Citation("Large-Scale Supervised Multimodal Hashing with Semantic Correlation Maximization",
                    "AAAI", 2014, "Dongqing Zhang, Wu-Jun Li",
                    url="https://ojs.aaai.org/index.php/AAAI/article/view/8995")
SPECS = [
    MethodSpec(name="scm-orth", description="SCM, orthogonal projections (one generalized eigenproblem)",
               citation=CITATION, create=lazy("cmhbench_methods.scm:SCMOrth"), defaults=ORTH_DEFAULTS, image_encoder="", input="features", stages={}),
    MethodSpec(name="scm-seq", description="SCM, sequential bit-by-bit learning against the residual",
               citation=CITATION, create=lazy("cmhbench_methods.scm:SCMSeq"), defaults=SEQ_DEFAULTS, image_encoder="", input="features", stages={},
               choices={"stop": STOP_RULES}),
]
