"""Model inputs (x, mask, pair) from a JetSet for a given model config, with stored standardisation.

``ModelConfig.inputs == "features"``: particle features come from ``l1tagger.features.particle_features`` in the
model's ordering (``l1tagger.features.ordering``), pairwise features from ``jet_pairwise_features`` in the same
slots (``l1tagger.features.layout``). Both are standardised per feature with the mean/std of the *training* jets'
real particles (real pairs), clipped to |z| <= ``clip`` (default 8, the range the QAT input grid must cover) and
zeroed on padded slots. The statistics travel in the checkpoint (``FeatureScaler.to_dict``) so evaluation, QAT and
firmware test benches preprocess identically.

``ModelConfig.inputs == "l1words"`` (:func:`word_inputs`, docs/l1_inputs.md): the jets become integer L1 particle
words (``l1tagger.data.words.jets_to_words`` in the model's slots and word format); ``x`` holds the words (float32
holding integers), ``mask`` their valid bit, ``pair`` is None (x, mask and pair are computed on chip from the words)
and ``graph_feed()`` is ``{"words": ...}``. Nothing is standardised: the scaler is the identity
(:meth:`FeatureScaler.identity`, no statistics, round-trips through ``to_dict``/``from_dict``), and
``ModelInputs.word_conversion`` keeps what the conversion saturated (``WordConversion.summary()``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import ConfigError, DataError
from l1tagger.features.ordering import particle_order
from l1tagger.features.pairwise import jet_pairwise_features
from l1tagger.features.particle import particle_features


#: the graph input of a model that takes L1 particle words (``ModelConfig.inputs == "l1words"``)
WORDS_INPUT = "words"


@dataclass
class ModelInputs:
    """A model's inputs for a set of jets.

    x:      (n, N, F) float32 standardised features, or with ``word_conversion`` the (n, N, n_fields) L1 words
            (float32 holding integers)
    mask:   (n, N) float32, 1 real / 0 padded (for words: their valid bit)
    pair:   (n, N, N, 4) float32 or None (always None for words: computed on chip)
    labels: (n,) int64
    word_conversion: for words, ``WordConversion.summary()`` of the float -> word conversion (format, particles,
            values saturated per field); None for features
    """

    x: np.ndarray
    mask: np.ndarray
    pair: np.ndarray | None
    labels: np.ndarray
    word_conversion: dict | None = None

    @property
    def is_words(self) -> bool:
        """Whether ``x`` holds L1 particle words (the graph's only input is ``words``)."""
        return self.word_conversion is not None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def graph_feed(self) -> dict[str, np.ndarray]:
        """The exported graph's inputs by name: ``words`` for a model on L1 words, else ``x``, ``mask`` and, with the
        interaction bias, ``pair``."""
        if self.is_words:
            return {WORDS_INPUT: self.x}
        feed = {"x": self.x, "mask": self.mask}
        if self.pair is not None:
            feed["pair"] = self.pair
        return feed

    def tensors(self, index=slice(None), device="cpu"):
        import torch

        t = lambda a: torch.as_tensor(a[index], device=device)  # noqa: E731
        return t(self.x), t(self.mask), (t(self.pair) if self.pair is not None else None)


def _stats(values: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = values[real].astype(np.float64)
    if v.shape[0] == 0:
        raise DataError("no real particles to compute feature statistics from")
    mean, std = v.mean(0), v.std(0)
    return mean.astype(np.float32), np.where(std < 1e-6, 1.0, std).astype(np.float32)


@dataclass
class FeatureScaler:
    """Per-feature (x - mean) / std, clipped to [-clip, clip], zero on padding.

    The identity scaler (:meth:`identity`: no statistics, ``x_mean is None``) belongs to models on L1 words, whose
    inputs are integer words and are never standardised; it cannot standardise features (DataError)."""

    x_mean: np.ndarray | None
    x_std: np.ndarray | None
    pair_mean: np.ndarray | None = None
    pair_std: np.ndarray | None = None
    clip: float = 8.0

    @classmethod
    def identity(cls, clip: float = 8.0) -> "FeatureScaler":
        """The scaler of a model on L1 words: no statistics (nothing is standardised)."""
        return cls(None, None, None, None, clip)

    @property
    def is_identity(self) -> bool:
        return self.x_mean is None

    @classmethod
    def fit(cls, x: np.ndarray, mask: np.ndarray, pair: np.ndarray | None = None, clip: float = 8.0):
        real = mask.astype(bool)
        xm, xs = _stats(x, real)
        pm = ps = None
        if pair is not None:
            pm, ps = _stats(pair, real[:, :, None] & real[:, None, :])
        return cls(xm, xs, pm, ps, clip)

    def apply(self, x, mask, pair=None):
        if self.is_identity:
            raise DataError("scaler has no feature statistics (it belongs to a model on L1 words, inputs: l1words); "
                            "features cannot be standardised with it")
        real = mask.astype(bool)
        if x.shape[-1] != self.x_mean.shape[0]:
            raise DataError(f"scaler was fitted on {self.x_mean.shape[0]} features, got {x.shape[-1]}")
        x = np.clip((x - self.x_mean) / self.x_std, -self.clip, self.clip) * real[..., None]
        if pair is not None:
            if self.pair_mean is None:
                raise DataError("scaler has no pair-feature statistics (model trained without interaction bias)")
            pr = real[:, :, None] & real[:, None, :]
            pair = np.clip((pair - self.pair_mean) / self.pair_std, -self.clip, self.clip) * pr[..., None]
            pair = pair.astype(np.float32)
        return x.astype(np.float32), pair

    def to_dict(self) -> dict:
        f = lambda a: None if a is None else [float(v) for v in a]  # noqa: E731
        return {"x_mean": f(self.x_mean), "x_std": f(self.x_std), "pair_mean": f(self.pair_mean),
                "pair_std": f(self.pair_std), "clip": float(self.clip)}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureScaler":
        g = lambda k: None if d.get(k) is None else np.asarray(d[k], np.float32)  # noqa: E731
        return cls(g("x_mean"), g("x_std"), g("pair_mean"), g("pair_std"), float(d.get("clip", 8.0)))


def word_inputs(jets: JetSet, cfg) -> ModelInputs:
    """The L1 particle words of ``jets`` for a model with ``cfg.inputs == "l1words"``: in the model's slots
    (ordering, truncation, padding) and word format (``cfg.l1_spec.format``), converted as the upstream firmware
    would (saturation counted in ``word_conversion``; NaN/inf in a real particle: DataError naming it)."""
    from l1tagger.data.words import jets_to_words

    conv = jets_to_words(jets, cfg.n_particles, cfg.l1_spec.format, ordering=cfg.ordering)
    fmt = conv.format
    words = conv.words.astype(np.float32)  # integers below 2^24: exact in float32
    valid = words[..., fmt.index("valid")].copy()
    return ModelInputs(words, valid, None, jets.labels.astype(np.int64), word_conversion=conv.summary())


def raw_inputs(jets: JetSet, cfg) -> ModelInputs:
    """Unstandardised features in the model's ordering, padded/truncated to cfg.n_particles (for a model on L1
    words: its words, :func:`word_inputs`)."""
    if cfg.inputs == "l1words":
        return word_inputs(jets, cfg)
    order = particle_order(jets, cfg.ordering, n_keep=cfg.n_particles)
    x, mask = particle_features(jets, cfg.n_particles, cfg.features, order=order)
    pair = jet_pairwise_features(jets, cfg.n_particles, order=order) if cfg.pair_bias else None
    return ModelInputs(x, mask.astype(np.float32), pair, jets.labels.astype(np.int64))


def standardise(raw: ModelInputs, scaler: FeatureScaler) -> ModelInputs:
    if raw.is_words:
        raise DataError("L1 particle words are integers the chip reads as they are: they are never standardised")
    x, pair = scaler.apply(raw.x, raw.mask, raw.pair)
    return ModelInputs(x, raw.mask, pair, raw.labels)


def build_inputs(jets: JetSet, cfg, scaler: FeatureScaler | None = None,
                 clip: float = 8.0) -> tuple[ModelInputs, FeatureScaler]:
    """Model inputs for ``cfg`` (a ModelConfig); fits a scaler (clipping at ``clip``) on ``jets`` when none is given.

    ``cfg.inputs == "l1words"``: the words (:func:`word_inputs`) and the identity scaler; a scaler with feature
    statistics (another model's) is a ConfigError."""
    if cfg.inputs == "l1words":
        if scaler is not None and not scaler.is_identity:
            raise ConfigError("the model takes L1 particle words (inputs: l1words), but its feature scaler holds "
                              "feature statistics (a scaler of a model on standardised features?)")
        return word_inputs(jets, cfg), scaler if scaler is not None else FeatureScaler.identity(clip)
    raw = raw_inputs(jets, cfg)
    if scaler is None:
        scaler = FeatureScaler.fit(raw.x, raw.mask, raw.pair, clip=clip)
    return standardise(raw, scaler), scaler
