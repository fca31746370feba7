"""`rlvr-train` and ``python -m rlvr.train`` (also under torchrun): the RL stage's entry, `rlvr.rl.train`."""
from rlvr.rl.train import main, train

__all__ = ["main", "train"]

if __name__ == "__main__":
    main()
