"""Session-wide test set-up.

The CPU is split into two logical devices before TensorFlow initialises, so
`tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])` can be tested on any machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def shared_data():
    """Path of ../shared/data; skips the test with a reason when it is absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is absent (real-data checks run where it is present, "
                    "as in CI)")
    return os.path.abspath(SHARED_DATA)
