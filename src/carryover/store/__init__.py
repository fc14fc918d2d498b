"""store layer (see DESIGN section 3)."""

# The eSIM tables register on the shared MetaData; importing them with the package keeps
# `metadata` (Alembic, the schema test) complete whichever table module is imported first.
from carryover.store import api_tables as _api_tables  # noqa: F401
from carryover.store import charging_tables as _charging_tables  # noqa: F401
from carryover.store import esim_tables as _esim_tables  # noqa: F401
from carryover.store import webhook_tables as _webhook_tables  # noqa: F401
