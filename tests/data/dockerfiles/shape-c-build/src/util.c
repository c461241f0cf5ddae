void u(){}
