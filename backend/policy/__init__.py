"""Policy more than one area asks, below them all, pure (an area reads, then asks): what each state of a consent
allows and whether a sample's speaker is its consent's (`consent`), whether a voice speaks yet (`speaker`), whether
a reflection's voice may launch (`launch`), where a preview lives (`preview`) and a set of samples' report
(`sample_set`). An area's own use cases live in the area (`backend.samples`, `backend.clone`, ...)."""
