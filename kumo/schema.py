"""Every table of kumo, in one MetaData: what Alembic's autogenerate compares the migrations
with (scripts/new-migration) and what tests create_all from. It stands above every service's
models, so kumo/db/ (the ground floor, migrations included) imports none of them."""

from kumo.baremetal import models as baremetal_models  # noqa: F401
from kumo.canary import models as canary_models  # noqa: F401
from kumo.compute import models as compute_models  # noqa: F401
from kumo.compute.precache import models as precache_models  # noqa: F401
from kumo.db.base import Base
from kumo.identity import models as identity_models  # noqa: F401
from kumo.image import models as image_models  # noqa: F401
from kumo.network import models as network_models  # noqa: F401
from kumo.placement import api_models as placement_api_models  # noqa: F401
from kumo.placement import models as placement_models  # noqa: F401
from kumo.rebalance import models as rebalance_models  # noqa: F401
from kumo.stock import models as stock_models  # noqa: F401
from kumo.work import models as work_models  # noqa: F401

metadata = Base.metadata
