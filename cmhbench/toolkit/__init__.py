"""The toolkit a method is written with: the pieces every built-in method uses, published.

Import from here (``from cmhbench.toolkit import InputNormaliser, similarity``); each name is
documented in docs/writing-a-method.md.
"""

from cmhbench.method import HashingMethod, MethodSetup, to_codes
from cmhbench.toolkit.bert_adam import BertAdam
from cmhbench.toolkit.captions import cut_caption_context
from cmhbench.toolkit.codes import TwoNetworkCodes
from cmhbench.toolkit.init import normal_init, tanh_head_std, without_dropout
from cmhbench.toolkit.inputs import InputNormaliser
from cmhbench.toolkit.linear import LinearHashing
from cmhbench.toolkit.losses import EpochLosses
from cmhbench.toolkit.schedules import log_uniform_schedule, set_lr
from cmhbench.toolkit.similarity import similarity

__all__ = ["BertAdam", "EpochLosses", "HashingMethod", "InputNormaliser", "LinearHashing", "MethodSetup", "TwoNetworkCodes",
           "cut_caption_context", "log_uniform_schedule", "normal_init", "set_lr", "similarity", "tanh_head_std", "to_codes",
           "without_dropout"]
