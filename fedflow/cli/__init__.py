"""The `fedflow` command line: `main` parses, `verbs` are the client commands, `serve` runs an
instance; `config`, `loader`, `certs` and `demo` serve them."""
