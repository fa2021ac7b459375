"""The loyalty tests. The month's helpers (tests/loyalty/month.py, api_vs_model.py) assert as
they go; registered here, before they are imported, so that pytest shows what differs when one
fails, as it does for the assertions of a test module.
"""

import pytest

pytest.register_assert_rewrite("tests.loyalty.api_vs_model", "tests.loyalty.month")
