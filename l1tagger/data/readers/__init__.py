"""One module per external jet format; each exposes ``detect(path) -> bool`` and
``read(path, max_particles=None, max_jets=None) -> JetSet`` (see ``l1tagger.data.io``)."""
