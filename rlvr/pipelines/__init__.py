"""Multi-stage flows over the training stages: `coevolution` (`rlvr-coevolve`: reward model and
policy trained in rounds, with the bad cases of one round relabelled for the next)."""
