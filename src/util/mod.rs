//! Small helpers shared by several concerns: cache directories and file locks.


