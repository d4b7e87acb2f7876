"""The number file: model, validation and the effective-target rules.

Typical use::

    result = check_number_file("number.yaml")     # every problem at once
    config = load_number_file("number.yaml")      # or raise InvalidNumberFile
    view = effective_view(config)                 # where packets go
"""

from harness.numbers.effective import Effective, Resolution, Target, effective_view
from harness.numbers.loader import (
    InvalidNumberFile,
    check_number_data,
    check_number_file,
    load_number_file,
    read_password_source,
)
from harness.numbers.model import (
    KNOWN_FIELDS,
    NUMBER_FIELDS,
    PASSWORD_MASK,
    HostPort,
    NumberConfig,
    PasswordSource,
    Problem,
    Transport,
    ValidationResult,
)
from harness.numbers.validation import PasswordSourceError, YamlContext, validate_mapping

__all__ = [
    "KNOWN_FIELDS",
    "NUMBER_FIELDS",
    "PASSWORD_MASK",
    "Effective",
    "HostPort",
    "InvalidNumberFile",
    "NumberConfig",
    "PasswordSource",
    "PasswordSourceError",
    "Problem",
    "Resolution",
    "Target",
    "Transport",
    "ValidationResult",
    "YamlContext",
    "check_number_data",
    "check_number_file",
    "effective_view",
    "load_number_file",
    "read_password_source",
    "validate_mapping",
]
