"""The contract kit: checks every registered movierec model must pass.

`movierec.testing.contract` holds the parameter table (`MODEL_CASES`, fast settings
for every registered model) and one check function per promise of the model contract
(`docs/architecture.md`); `run_contract` runs them all on one model. The project's own
`tests/test_contract.py` runs it over `movierec.models.available()`; a third-party
model can run it on itself.
"""

from movierec.testing.contract import (
    CHECKS,
    FOLD_IN_FLOORS,
    MODEL_CASES,
    ContractCase,
    check_table_covers_registry,
    make_case,
    make_model,
    run_contract,
)

__all__ = [
    "CHECKS",
    "FOLD_IN_FLOORS",
    "MODEL_CASES",
    "ContractCase",
    "check_table_covers_registry",
    "make_case",
    "make_model",
    "run_contract",
]
