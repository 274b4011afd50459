"""`make chaos`: three fedflow instances as three hosts (network namespaces), links cut and
healed, traffic dropped, delayed and reset by `proxy.FaultProxy`, processes killed with
`kill -9`; `check` reads every store at the end. `run` is the entry point."""
