"""Scale-out: several exo engines share the orders through Redis Streams
consumer groups, with leases, fencing epochs and failover.

- ``Intake`` (api role): writes NEW/CANCEL/REPLACE and reports to the intake
  streams; reads an order's progress from Redis.
- ``EngineNode`` (engine role): an ``exo.Engine`` that takes orders from the
  intake under per-order leases, journals them through a ``FencedStore``,
  and claims the orders of engines that died or stopped.

See ``exo.scaleout.node`` for the protocol and README "Scale-out" for keys,
roles and a failover timeline.
"""

from exo.scaleout.intake import Intake
from exo.scaleout.lease import Lease, Leases
from exo.scaleout.node import EngineNode
from exo.scaleout.store import FencedStore

__all__ = ["EngineNode", "FencedStore", "Intake", "Lease", "Leases"]
