"""Progress in a log file is plain periodic lines, never carriage-return bar frames."""

import io

from l1tagger.utils.progress import LineProgress, progress


def test_redirected_progress_is_plain_lines(capsys):
    items = list(progress(range(1000), desc="work", unit="jet"))
    assert items == list(range(1000))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    # the default interval is 30 s: a fast loop prints only its closing line
    assert lines == [lines[-1]] and lines[-1].startswith("work: 1000/1000 jet (100%)")


def test_line_progress_prints_at_most_once_per_interval():
    out = io.StringIO()
    bar = LineProgress(total=10, desc="epoch 1", interval=0.0, stream=out)
    for _ in range(10):
        bar.update(1)
    bar.set_postfix_str("loss 0.5")
    bar.close()
    bar.close()  # closing twice prints once
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and lines[0].startswith("epoch 1: 1/10") and lines[-1].endswith("loss 0.5")
    quiet = io.StringIO()
    LineProgress(range(5), desc="x", interval=3600, stream=quiet, disable=True).close()
    assert quiet.getvalue() == ""


def test_inner_loop_without_leave_prints_no_closing_line():
    out = io.StringIO()
    list(LineProgress(range(3), desc="epoch", interval=3600, stream=out, leave=False))
    assert out.getvalue() == ""
