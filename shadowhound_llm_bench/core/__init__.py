"""Pure, typed logic: no rclpy, no network, no Docker."""
