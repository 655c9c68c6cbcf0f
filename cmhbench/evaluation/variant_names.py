"""The names of the papers' mAP variants (cmhbench.evaluation.variants), torch-free: specs check a
reported figure's definition against them without importing the evaluator."""

VARIANT_NAMES = ("dcmh_map", "dchmt_map", "twdh_map@5000", "djsrh_map@50", "daph_map")
#: what a reported figure may name as its definition: cmhbench's own mAP or a variant
DEFINITIONS = ("map", *VARIANT_NAMES)
