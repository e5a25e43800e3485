"""ROS test isolation: each test module on its own ROS domain (its DOMAIN_ID), discovery on localhost only."""
import pytest


@pytest.fixture(scope="module", autouse=True)
def isolated_dds(request):
    """Sets ROS_DOMAIN_ID from the module's DOMAIN_ID (modules without DDS have none) and keeps DDS
    discovery on this machine."""
    domain = getattr(request.module, "DOMAIN_ID", None)
    with pytest.MonkeyPatch.context() as mp:
        if domain is not None:
            mp.setenv("ROS_DOMAIN_ID", str(domain))
        mp.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        mp.delenv("ROS_STATIC_PEERS", raising=False)
        yield
