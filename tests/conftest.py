import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def toy_jets():
    from l1tagger.data.synthetic import toy_jets as make

    return make(n_jets=256, max_particles=24, n_classes=3, seed=0)
