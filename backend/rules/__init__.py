"""The rules more than one area needs, below them all, so that no area reaches into a neighbour: starting a clone from
any source (`start`) and what a route that starts one answers (`started_clone`), storing an uploaded sample
(`sample_upload`), checking and cleaning one (`sample_check`), removing one (`sample_purge`), the set of samples an
enrolment sends (`sample_set`), whether a sample's speaker is its consent's (`consent`) and what each state of a
consent allows (`consent_states`), whether a voice can speak yet (`speaker`, `enrolled`), how much a voice sounds
like its samples (`likeness`), giving a voice a provider voice again (`portability`), a voice's manifest
(`manifest`), where its preview lives (`preview`), and whether it may launch (`launch`)."""
