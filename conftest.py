pytest_plugins = ["expensura_ops.testing.fixtures"]
