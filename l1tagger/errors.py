"""Exception hierarchy. Every user-facing failure raises one of these with a message naming the problem."""


class L1TaggerError(Exception):
    """Base class for all l1tagger errors."""


class DataError(L1TaggerError):
    """Bad input data: NaN/inf features, empty jets, missing branches, unknown class sets."""


class ConfigError(L1TaggerError):
    """A config / recipe / budget file with an unknown key, a missing field, or an impossible value."""


class ExportError(L1TaggerError):
    """A model that cannot be exported (e.g. an op outside the supported set)."""


class ConversionError(L1TaggerError):
    """A graph the firmware converter cannot map (names the op / node)."""


class VerificationError(L1TaggerError):
    """Firmware and reference disagree (names the first differing layer)."""


class NotBitExactError(VerificationError):
    """A bit-exactness check found a difference (C simulation, export cross-check, RTL check); raised after its
    evidence (result file, manifest) is written. Every command exits with code 3 on it (``l1tagger.cli``); other
    VerificationErrors (a missing or modified project file) exit with 1 like every other error."""


class ToolNotFoundError(L1TaggerError):
    """A required external tool (vitis_hls, vivado, verilator, yosys) is not on the PATH."""


class ReportParseError(L1TaggerError):
    """A vendor/synthesis report that is malformed or truncated (names the missing section or field)."""


class OutputError(L1TaggerError):
    """An artifact that cannot be written: read-only or impossible output path (names the path and the reason)."""
