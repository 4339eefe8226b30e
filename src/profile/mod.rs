//! Profiles (`profiles/*.toml`): which roles, models, modes and contexts a run covers, and
//! the guide's expectation tables as data.


