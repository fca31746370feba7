"""``python -m rlvr.sft``: the same entry as `rlvr-sft` (`rlvr.sft.train`)."""
from rlvr.sft.train import main

main()
