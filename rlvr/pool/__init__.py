"""Warm pools: engine, learner and reward actors that outlive a trial, leased by one trial at a time."""
