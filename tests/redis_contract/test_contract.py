"""Every contract test, collected here a second time to run against `RedisLivenessStore`."""

from tests.contract.test_checkpoints import *  # noqa: F403
from tests.contract.test_concurrency import *  # noqa: F403
from tests.contract.test_events import *  # noqa: F403
from tests.contract.test_fork import *  # noqa: F403
from tests.contract.test_housekeeping import *  # noqa: F403
from tests.contract.test_leases import *  # noqa: F403
from tests.contract.test_lifecycle import *  # noqa: F403
from tests.contract.test_listing import *  # noqa: F403
from tests.contract.test_retention import *  # noqa: F403
from tests.contract.test_sessions import *  # noqa: F403
from tests.contract.test_store import *  # noqa: F403
from tests.contract.test_transfer import *  # noqa: F403
from tests.contract.test_validation import *  # noqa: F403
