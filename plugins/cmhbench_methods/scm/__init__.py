"""SCM (Zhang & Li, AAAI 2014), orthogonal and sequential: the specs and hyper-parameters, torch-free;
the methods are in ``model.py``."""

from dataclasses import dataclass
from typing import Literal

from cmhbench.specs import Citation, MethodSpec, lazy


@dataclass(frozen=True)
class SCMOrthParams:
    #: ε, relative to each covariance's mean diagonal
    regularisation: float = 1e-4


@dataclass(frozen=True)
class SCMSeqParams(SCMOrthParams):
    #: "cca": stop when the residual no longer shrinks and fill with CCA pairs (the authors' code);
    #: "none": learn every bit against the residual (the paper's algorithm)
    stop: Literal["none", "cca"] = "cca"


CITATION = Citation("Large-Scale Supervised Multimodal Hashing with Semantic Correlation Maximization",
                    "AAAI", 2014, "Dongqing Zhang, Wu-Jun Li",
                    url="https://ojs.aaai.org/index.php/AAAI/article/view/8995")
SPECS = [
    MethodSpec(name="scm-orth", description="SCM, orthogonal projections (one generalized eigenproblem)",
               citation=CITATION, create=lazy("cmhbench_methods.scm.model:SCMOrth"), params=SCMOrthParams,
               image_encoder="", input="features", stages={}),
    MethodSpec(name="scm-seq", description="SCM, sequential bit-by-bit learning against the residual",
               citation=CITATION, create=lazy("cmhbench_methods.scm.model:SCMSeq"), params=SCMSeqParams,
               image_encoder="", input="features", stages={}),
]
