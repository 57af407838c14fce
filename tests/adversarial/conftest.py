"""Fixtures of the adversarial suite: a network under attack.

``attack_target`` is one network for the whole session: a hub process on loopback with staked
honest participants, an honest task it coordinates, a payout to claim from, and the attacking
accounts (:class:`deai.testing.attacks.Target`; the ``attacker`` holds nothing). Attacks that may
leave a hub stuck on unfixed code use ``fresh_attack_target``, a network of their own.
"""

import pytest

from deai.testing.attacks import Target


@pytest.fixture(scope="session")
def attack_target(tmp_path_factory):
    with Target.start(tmp_path_factory.mktemp("adversarial")) as target:
        yield target


@pytest.fixture
def fresh_attack_target(tmp_path):
    with Target.start(tmp_path, tag="adv-fresh") as target:
        yield target
