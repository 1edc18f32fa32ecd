-- What Storage's backend last reported of each recorded object (`backend.storage.integrity`): the version whose
-- bytes were checked against the record and matched (`checked_version`), and one whose bytes did not
-- (`altered_version`). A URL to an object whose version is still the one checked is signed without reading its
-- bytes again; one still at the altered version is refused without reading them again.

set lock_timeout = '4s';

alter table voicegate.service_written_objects
  add column checked_version text,
  add column altered_version text;
