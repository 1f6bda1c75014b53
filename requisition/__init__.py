"""The workflow: requisitions, cameras, holds, agents (and the demo that runs them)."""
