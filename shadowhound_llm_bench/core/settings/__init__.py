"""
What users and goal senders may ask for.

Every node parameter with its range and description (the robot's, then the separate simulation
group of a simulated machine), goal checking and completion, the goal's outcome in the action's
terms, which paths may be named, the ROS arguments read before rclpy, a small JSON-schema
checker, the run options pinned for comparable results, and the parameters page.
"""
