"""The comparison lab: sweeps of activations × models × data sets × paired seeds (`sweep`), and the
`actlab compare / results / report` commands (`command`). Imported explicitly; nothing loads here."""
