"""Datasets -> `Prompt`s (row schema in `rlvr.data.schema`); built-in task generators."""
from rlvr.data.arithmetic import ArithmeticTask
from rlvr.data.schema import Prompt, row_to_prompt
from rlvr.data.sources import SOURCES, PromptSet, PromptStream, build_prompt_sets, register_source

__all__ = ["Prompt", "row_to_prompt", "ArithmeticTask", "PromptSet", "PromptStream", "SOURCES",
           "build_prompt_sets", "register_source"]
