"""Pure-torch building blocks: the TensorFlow-exact BasicRNNCell, dynamic_rnn, weight interchange."""

from forecaster.nn.cell import ACTIVATIONS, BasicRNNCell, dynamic_rnn, final_state, get_activation
from forecaster.nn.convert import (
    cell_from_torch_rnn,
    from_keras,
    from_tf1,
    from_torch,
    load_into_torch_rnn,
    to_keras,
    to_tf1,
    to_torch,
)
from forecaster.nn.network import EnsembleNet, RNNForecastNet, build_net, window_scale

__all__ = [
    "ACTIVATIONS",
    "BasicRNNCell",
    "EnsembleNet",
    "RNNForecastNet",
    "build_net",
    "cell_from_torch_rnn",
    "dynamic_rnn",
    "final_state",
    "from_keras",
    "from_tf1",
    "from_torch",
    "get_activation",
    "load_into_torch_rnn",
    "to_keras",
    "to_tf1",
    "to_torch",
    "window_scale",
]
