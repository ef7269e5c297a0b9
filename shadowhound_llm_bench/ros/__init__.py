"""The ROS 2 node, its action server, memory topic, diagnostics and the rclpy console client."""
