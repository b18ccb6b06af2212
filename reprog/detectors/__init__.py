"""The defender's side: detectors of attack and reprogramming queries, torch only."""

from reprog.detectors.stateful import StatefulDetector

__all__ = ["StatefulDetector"]
