"""Preference data for the reward-model and DPO trainers (schema: `rlvr.preference.schema`,
row shapes: `rlvr.preference.adapters`, files: `rlvr.preference.load`; docs/reward-models.md)."""
from rlvr.preference.adapters import ADAPTERS, Adapter, parse_hh, register_adapter
from rlvr.preference.load import load_preferences, read_rows
from rlvr.preference.schema import DROP_REASONS, Dropped, Pair, PreferenceSet, expand_ranked, prompt_key

__all__ = ["Pair", "PreferenceSet", "load_preferences", "expand_ranked", "read_rows", "prompt_key", "Dropped",
           "DROP_REASONS", "ADAPTERS", "Adapter", "register_adapter", "parse_hh"]
