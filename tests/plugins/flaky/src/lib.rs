//! Test plugin (written by the plugin-host task).
