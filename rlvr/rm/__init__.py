"""`rlvr-rm`: scalar reward models (a causal-LM backbone + a one-output head) trained with the
Bradley-Terry loss on `rlvr.preference` pairs (docs/reward-models.md).

    config   RMConfig (root conf/rm.yaml), validate_rm, the batch arithmetic
    data     preference sources (file | preference_task) and the held-out split by prompt
    encode   pairs -> token ids (render_pair), padded micro-batches with mask-derived positions
    model    build / score at the last real token / save with reward_stats.json
    loss     bradley_terry_loss (margin, centering)       metrics  accuracy, length bias, stats
    scorers  whole model, or the head on frozen features  trainer  the step / evaluation loop
    run      one run end to end                           train    the Hydra entry point
"""
