"""Split tools on small files in the official formats (CRLF), group leakage, relabelling."""
import os

import pytest

from datasets import read_annotations, read_label_list
from datasets.splits import SplitError, find_leakage, folder_split, hmdb51_split, ucf101_split
from tools.splits import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One line per label of the published HMDB51 train list (labels 2..52, CRLF), as released.
PUBLISHED_HMDB51 = os.path.join(ROOT, 'tests', 'fixtures', 'hmdb51_published_excerpt.csv')
UCF_CLASSES = ['ApplyEyeMakeup', 'HandstandPushups', 'YoYo']


def write(path, lines):
    with open(path, 'w', newline='') as f:
        f.write(''.join(line + '\r\n' for line in lines))


def ucf_lists(folder, extra_test=()):
    """classInd + split 1: groups 3-5 train, 1-2 test, 2 clips each (file names spell the class
    as UCF101 does, e.g. HandStandPushups inside the HandstandPushups folder)."""
    write(folder / 'classInd.txt', [f'{i + 1} {c}' for i, c in enumerate(UCF_CLASSES)])

    def clip(c, g, k):
        return f'{c}/v_{c.replace("Handstand", "HandStand")}_g{g:02d}_c{k:02d}.avi'

    write(folder / 'trainlist01.txt', [f'{clip(c, g, k)} {i + 1}' for i, c in enumerate(UCF_CLASSES)
                                       for g in (3, 4, 5) for k in (1, 2)])
    write(folder / 'testlist01.txt', [clip(c, g, k) for c in UCF_CLASSES for g in (1, 2) for k in (1, 2)]
          + list(extra_test))
    return folder


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def test_ucf101_official_lists(tmp_path):
    ucf_lists(tmp_path)
    assert main(['ucf101', '--lists', str(tmp_path), '--split', '1', '--out', str(tmp_path / 'out')]) == 0
    train, val = lines(tmp_path / 'out' / 'train.csv'), lines(tmp_path / 'out' / 'val.csv')
    assert len(train) == 18 and len(val) == 12
    assert train[0] == 'ApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi,0'
    assert val[-1] == 'YoYo/v_YoYo_g02_c02.avi,2'
    assert read_label_list(str(tmp_path / 'out' / 'labels.csv'), 3) == UCF_CLASSES
    assert len(read_annotations(str(tmp_path / 'out' / 'val.csv'), '', 3)) == 12


def test_ucf101_class_order_from_an_existing_list(tmp_path):
    ucf_lists(tmp_path)
    write(tmp_path / 'paper.csv', ['id,name', '0,YoYo', '1,applyeyemakeup', '2,HandstandPushups'])
    train, val, names = ucf101_split(str(tmp_path), 1, str(tmp_path / 'paper.csv'))
    assert names == ['YoYo', 'applyeyemakeup', 'HandstandPushups']
    assert {label for path, label in train if path.startswith('YoYo/')} == {0}


def test_ucf101_refuses_a_group_in_both_lists(tmp_path):
    ucf_lists(tmp_path, extra_test=['YoYo/v_YoYo_g04_c07.avi'])
    with pytest.raises(SplitError, match=r'1 group\(s\) would be in both train and val \(e.g. yoyo/g04\)'):
        ucf101_split(str(tmp_path), 1)
    with pytest.raises(SplitError, match='would be in both train and val'):
        main(['ucf101', '--lists', str(tmp_path), '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_ucf101_bad_lines_are_named(tmp_path):
    ucf_lists(tmp_path)
    path = tmp_path / 'trainlist01.txt'
    write(path, lines(path)[:3] + ['YoYo/v_YoYo_g05_c01.avi 1'])
    with pytest.raises(SplitError, match=r'trainlist01.txt, line 4: label 1 does not match the folder YoYo'):
        ucf101_split(str(tmp_path), 1)
    write(tmp_path / 'testlist01.txt', ['Nope/v_Nope_g01_c01.avi'])
    write(path, [])
    with pytest.raises(SplitError, match="testlist01.txt, line 1: expected `Class/video.avi`"):
        ucf101_split(str(tmp_path), 1)


def test_hmdb51_split_files(tmp_path):
    for name, marks in (('brush_hair', [1, 1, 1, 2, 2, 0]), ('wave', [2, 1, 0, 0, 1, 1, 2])):
        write(tmp_path / f'{name}_test_split1.txt', [f'{name}_clip{k}.avi {m} ' for k, m in enumerate(marks)])
        write(tmp_path / f'{name}_test_split2.txt', [f'{name}_clip0.avi 1 '])
    train, val, names = hmdb51_split(str(tmp_path), 1)
    assert names == ['brush_hair', 'wave'] and (len(train), len(val)) == (6, 4)
    assert ('wave/wave_clip0.avi', 1) in val and ('brush_hair/brush_hair_clip0.avi', 0) in train
    write(tmp_path / 'wave_test_split1.txt', ['wave_clip0.avi 3'])
    with pytest.raises(SplitError, match=r"wave_test_split1.txt, line 1: expected `<video> <0\|1\|2>`"):
        hmdb51_split(str(tmp_path), 1)


def folder_tree(root):
    for c in ('Biking', 'Diving'):
        os.makedirs(root / c)
        for g in range(1, 26):
            for k in (1, 2):
                (root / c / f'v_{c}_g{g:02d}_c{k:02d}.avi').write_bytes(b'')
        (root / c / 'notes.txt').write_text('not a video')
    (root / 'Diving' / 'extra_clip.mp4').write_bytes(b'')  # no group in its name


def test_folder_split_by_group_numbers(tmp_path):
    folder_tree(tmp_path)
    train, val, names = folder_split(str(tmp_path), val_groups='21-25')
    assert names == ['Biking', 'Diving'] and (len(train), len(val)) == (81, 20)
    assert all(int(p.split('_g')[1][:2]) >= 21 for p, _ in val)
    assert not find_leakage([p for p, _ in train], [p for p, _ in val])


def test_folder_split_by_fraction_never_splits_a_group(tmp_path):
    folder_tree(tmp_path)
    train, val, _ = folder_split(str(tmp_path), val_fraction=0.2, seed=3)
    assert len(val) in (21, 22)  # 5 of Biking's 25 groups; 6 of Diving's 26 (one is the ungrouped file)
    assert not find_leakage([p for p, _ in train], [p for p, _ in val])
    assert len(train) + len(val) == 101
    assert (train, val) == folder_split(str(tmp_path), val_fraction=0.2, seed=3)[:2]  # seeded
    assert val != folder_split(str(tmp_path), val_fraction=0.2, seed=4)[1]
    assert main(['folders', '--root', str(tmp_path), '--val-groups', '1,2', '--out', str(tmp_path / 'o')]) == 0
    assert len(lines(tmp_path / 'o' / 'val.csv')) == 8


def test_leakage_check_on_the_published_ucf101_pair(capsys):
    train, val = (os.path.join(ROOT, 'data', 'ucf101', f'{s}.csv') for s in ('train', 'val'))
    assert main(['leakage', train, val]) == 1
    out = capsys.readouterr().out
    assert out.strip().endswith(f'81 group(s) in both {train} and {val}')
    assert 'applyeyemakeup group 21:' in out


def test_leakage_check_passes_a_clean_pair(tmp_path):
    ucf_lists(tmp_path)
    main(['ucf101', '--lists', str(tmp_path), '--out', str(tmp_path / 'out')])
    assert main(['leakage', str(tmp_path / 'out' / 'train.csv'), str(tmp_path / 'out' / 'val.csv')]) == 0


def test_relabel_fixes_the_published_hmdb51_files(tmp_path):
    """Our relabelling of the published lines gives exactly the shipped data/hmdb51 lines."""
    labels = os.path.join(ROOT, 'labels', 'hmdb_51_labels.csv')
    out = str(tmp_path / 'train.csv')
    assert main(['relabel', PUBLISHED_HMDB51, '--labels', labels, '--out', out]) == 0
    samples = read_annotations(out, '', 51)
    names = read_label_list(labels, 51)
    assert len(samples) == 51 and {label for _, label in samples} == set(range(51))
    assert all(path.split('/')[1] == names[label] for path, label in samples)
    shipped = set(lines(os.path.join(ROOT, 'data', 'hmdb51', 'train.csv')))
    assert set(lines(out)) <= shipped
    published = {line.split(',')[0]: int(line.split(',')[1]) for line in lines(PUBLISHED_HMDB51)}
    assert published['train/smoke/A_Beautiful_Mind_5_smoke_u_nm_np1_fr_goo_10.avi'] == 2
    assert ('train/smoke/A_Beautiful_Mind_5_smoke_u_nm_np1_fr_goo_10.avi', names.index('smoke')) in samples
