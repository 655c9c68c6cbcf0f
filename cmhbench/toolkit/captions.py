"""How many caption tokens a CLIP method's text tower reads."""

from __future__ import annotations

from cmhbench.errors import CmhbenchError


def cut_caption_context(text_tower, max_words: int, method: str) -> None:
    """Make ``text_tower`` read the first ``max_words`` tokens (start and end tokens included), as the
    CLIP-era releases cut captions (DCHMT, MITH, DSPH: 32); one line naming ``max_words`` when the
    tower cannot."""
    if not 3 <= max_words <= text_tower.context_length:
        raise CmhbenchError(f"{method}: max_words={max_words}; expected 3..{text_tower.context_length} "
                            "(the text tower's context)")
    text_tower.context_length = max_words
