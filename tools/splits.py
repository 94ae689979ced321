"""Build train/val annotation files and the class list, and check a split for group leakage.

    python -m tools.splits ucf101  --lists ucfTrainTestlist --split 1 --out data/ucf101
    python -m tools.splits hmdb51  --splits testTrainMulti_7030_splits --split 1 --out data/hmdb51
    python -m tools.splits folders --root UCF50 --val-groups 21-25 --out data/ucf50
    python -m tools.splits leakage data/ucf101/train.csv data/ucf101/val.csv
    python -m tools.splits relabel published/hmdb51/train.csv --labels labels.csv --out train.csv

Each builder writes `train.csv`, `val.csv` (`relative/path,label`, relative to the dataset folder
that DATA.ROOT points at) and `labels.csv` (`id,name`), and refuses to write a split that puts one
group (UCF `_gNN_`: clips cut from the same long video) in both train and val. `leakage` exits
with status 1 when it finds such groups; bad input is `error: ...` with status 2. The library is
datasets/splits.py.
"""

from datasets.splits import (GROUP_PATTERN, annotation_paths, find_leakage, folder_split, hmdb51_split, relabel,
                             ucf101_split, write_csv, write_split)
from utils import cli
from utils.errors import cli_main


def main(argv=None):
    parser = cli.command_parser('python -m tools.splits', __doc__)
    sub = parser.add_subparsers(dest='command', required=True)

    def common(p):
        p.add_argument('--out', required=True, help='folder for train.csv, val.csv, labels.csv')
        p.add_argument('--labels', help='existing id,name list whose class order to keep (e.g. the paper\'s)')
        p.add_argument('--prefix', default='', help='prepended to every path (e.g. "UCF-101/")')

    p = sub.add_parser('ucf101', help='official UCF101 lists (classInd.txt, trainlist0N.txt, testlist0N.txt)')
    p.add_argument('--lists', required=True, help='folder of the official list files')
    p.add_argument('--split', type=int, choices=(1, 2, 3), default=1)
    common(p)
    p = sub.add_parser('hmdb51', help='official HMDB51 split files (<class>_test_split<N>.txt)')
    p.add_argument('--splits', required=True, help='folder of the official split files')
    p.add_argument('--split', type=int, choices=(1, 2, 3), default=1)
    common(p)
    p = sub.add_parser('folders', help='<root>/<class>/<video> tree, split by group')
    p.add_argument('--root', required=True)
    p.add_argument('--val-groups', help='validation groups by number, e.g. 21-25 or 1,5,9')
    p.add_argument('--val-fraction', type=float, default=0.2, help='else this fraction of each class\'s groups')
    p.add_argument('--group-pattern', default=GROUP_PATTERN, help='regex whose first group names the group')
    p.add_argument('--seed', type=int, default=0)
    common(p)
    p = sub.add_parser('leakage', help='report groups present in both files of a train/val pair')
    p.add_argument('train_csv')
    p.add_argument('val_csv')
    p.add_argument('--group-pattern', default=GROUP_PATTERN)
    p = sub.add_parser('relabel', help='relabel a path,label file from class folders and a class list')
    p.add_argument('csv')
    p.add_argument('--labels', required=True)
    p.add_argument('--out', required=True, help='output csv')
    args = cli.parse(parser, argv)

    if args.command == 'leakage':
        paths = [annotation_paths(f) for f in (args.train_csv, args.val_csv)]
        leaks = find_leakage(*paths, args.group_pattern)
        for (cls, group), (n_train, n_val) in leaks.items():
            print(f'{cls} group {group}: {n_train} train, {n_val} val')
        print(f'{len(leaks)} group(s) in both {args.train_csv} and {args.val_csv}')
        return 1 if leaks else 0
    if args.command == 'relabel':
        rows, _ = relabel(args.csv, args.labels)
        write_csv(args.out, rows)
        print(f'wrote {len(rows)} lines to {args.out}')
        return 0
    if args.command == 'ucf101':
        train, val, names = ucf101_split(args.lists, args.split, args.labels)
    elif args.command == 'hmdb51':
        train, val, names = hmdb51_split(args.splits, args.split, args.labels)
    else:
        train, val, names = folder_split(args.root, args.val_groups, args.val_fraction, args.group_pattern,
                                         args.labels, args.seed)
    write_split(args.out, train, val, names, args.prefix)
    print(f'wrote {len(train)} train and {len(val)} val videos of {len(names)} classes to {args.out}')
    return 0


if __name__ == '__main__':
    cli_main(main)
