from relay_ops import run_process

from relay_message.bootstrap import run

if __name__ == "__main__":
    run_process(run)
